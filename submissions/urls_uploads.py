from django.urls import path

from submissions import views_uploads

urlpatterns = [
    path("submissions/upload/", views_uploads.upload, name="upload"),
]
