"""hubd's built-in hardware drivers, registered in the ``hubd.drivers`` entry-point group."""
