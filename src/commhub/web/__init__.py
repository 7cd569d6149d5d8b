"""aiohttp application: the JSON API, the login page, and (later) the console and live feed."""
