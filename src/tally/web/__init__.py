"""The usage dashboard: one static page that calls the public API with the user's key."""
