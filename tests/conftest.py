"""Suite-wide fixtures: databases (tests/fixtures/databases.py), Redis and the emulator."""

pytest_plugins = ["tests.fixtures.databases"]
