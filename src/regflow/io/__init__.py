"""Reading and writing files: CSV in pieces, safetensors weights."""
