from django.urls import path

from submissions.apikey import views

urlpatterns = [
    path("settings/api-key/", views.api_key, name="api_key"),
    path("settings/api-key/test/", views.test_connection, name="api_key_test"),
]
