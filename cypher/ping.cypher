// Connection check: fails with DatabaseNotFound when the database does not exist.
RETURN 1 AS ok
