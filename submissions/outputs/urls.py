from django.urls import path

from submissions.outputs import views

urlpatterns = [
    path("submissions/<int:pk>/output/", views.output, name="output"),
    path("submissions/<int:pk>/output/retry/", views.retry, name="output_retry"),
]
