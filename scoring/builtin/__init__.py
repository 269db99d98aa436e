"""Built-in behaviour, written as plugins and registered at start-up."""
