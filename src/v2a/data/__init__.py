"""The data engine: real SFX corpus, procedural Foley world, ingestion of user footage, training shards."""
