"""Value types shared by every domain: instants and exact quantities."""
