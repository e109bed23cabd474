"""Sessions and their events: the stored event, timelines, lists and latest errors."""
