"""Activities: everything a workflow needs done in the world."""
