"""The metamodel: app documents, their validation, versions and migrations.

This package is the pure core: it never imports Flask. It may touch the database
only through a SQLAlchemy connection handed to it.
"""
