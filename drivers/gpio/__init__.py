"""GPIO drivers on gpiozero: inputs, outputs, PWM."""
