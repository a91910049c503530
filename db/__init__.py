"""The SQL migrations, installed as ``ingestro.migrations``; ``ingestro.database.migrations`` applies them."""
