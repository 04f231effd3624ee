from django.urls import path  # noqa: F401 - its views are added here

urlpatterns: list = []
