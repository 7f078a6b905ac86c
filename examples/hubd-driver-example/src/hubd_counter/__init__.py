"""hubd-driver-example: the ``example.counter`` driver, installed apart from hubd."""
