from django.urls import path

from submissions import views_settings

urlpatterns = [
    path("settings/api-key/", views_settings.api_key, name="api_key"),
    path("settings/api-key/test/", views_settings.test_connection, name="api_key_test"),
]
