from django.urls import path

from submissions.team import views

urlpatterns = [
    path("team/members/", views.members, name="team_members"),
    path("team/members/<int:pk>/", views.update_member, name="team_member_update"),
    path("team/usage/", views.usage_page, name="team_usage"),
]
