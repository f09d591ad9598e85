"""HTTP routes: thin functions over the service state and the scorer."""
