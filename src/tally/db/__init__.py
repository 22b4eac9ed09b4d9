"""Engine, sessions, the declarative base and migrations."""
