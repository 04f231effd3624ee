"""Django admin, one module per model. Importing them registers them (Django imports this package)."""

from submissions.admin import activity, apikey, batches, problems, submissions, users  # noqa: F401 - registers each admin
