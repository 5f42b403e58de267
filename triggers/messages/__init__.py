"""Import requests as messages: the message model and its JSON Schema, the intake that turns one message into one job
(or a dead letter with its reason), and the Redis Stream consumer that feeds it."""
