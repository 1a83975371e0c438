"""Dataset adapters: one module per annotation format (`base.Adapter`), looked up by name through
`registry` (which only ingest and its config import)."""
