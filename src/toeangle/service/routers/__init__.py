"""One router per resource: measurements, reference data, operations (health) and the web page."""
