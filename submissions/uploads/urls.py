from django.urls import path

from submissions.uploads import views

urlpatterns = [
    path("submissions/upload/", views.upload, name="upload"),
]
