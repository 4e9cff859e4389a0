"""The types that cross Temporal, one module per workflow family: workflow inputs, signals,
updates, queries, activity arguments and results. Imported alike by workflows, activities and
the callers in `badges.temporal`; field names are the JSON in workflow histories, so they never
change without a versioned workflow change."""
