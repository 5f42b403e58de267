"""Suite-wide fixtures: databases (tests/fixtures/databases.py) and the service under test with its Redis broker
and emulator (tests/fixtures/service_stack.py), which each suite tunes by overriding a few small fixtures."""

pytest_plugins = ["tests.fixtures.databases", "tests.fixtures.service_stack"]
