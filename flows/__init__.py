"""flows: Prefect 3 flows for preprocessing, training and batch scoring (issue 7)."""
