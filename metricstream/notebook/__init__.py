"""For notebooks: the dashboard in a cell (`show()`), readings as a DataFrame, and which cell started a
hub."""
