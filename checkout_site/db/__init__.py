"""The project's database backends (settings.DATABASES picks one by ``ENGINE``)."""
