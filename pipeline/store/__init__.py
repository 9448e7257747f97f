"""The store: its Arrow schemas, where every file lives, atomic writes, what each
per-category stage keeps between runs, and the download's list of categories."""
