"""The web console: server-rendered pages for operators, managers and admins."""
