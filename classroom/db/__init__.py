"""Persistence: SQLAlchemy 2 async models, the engine, repositories and migrations."""
