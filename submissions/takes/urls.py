from django.urls import path

from submissions.takes import views

urlpatterns = [
    path("submissions/<int:pk>/new-take/", views.new_take, name="new_take"),
]
