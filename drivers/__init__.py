"""hubd's built-in hardware drivers, registered in the ``hubd.drivers`` entry-point group.

The only code that imports gpiozero, pyserial and bleak; hubd reaches it only through the registry.
It may import hubd.core and hubd.errors; never hubd.events, hubd.people, hubd.xmpp or hubd.service.
"""
