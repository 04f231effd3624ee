"""Users and groups in Django admin, so that staff who are not superusers cannot raise anyone's privileges.

Django's stock UserAdmin lets anyone with "change user" tick *Superuser status* (on themselves too), reset a
superuser's password and give any group or permission; team admins hold "change user" to look after
members. Who may change whom, and what they may give, is decided in submissions.team (the Members page
asks the same functions); this module only applies those answers to admin's forms, views and actions. A
member's monthly limits (jobs, minutes of output) are set on their page too, as on the Members page."""

import functools

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied

from submissions import roles
from submissions.models import MonthlyLimit
from submissions.team import services as team_services
from submissions.team.forms import MinutesLimitCheck

User = get_user_model()

# Only a superuser may set these; for anyone else admin shows them as text and leaves them out of the form.
PRIVILEGE_FIELDS = ("is_superuser", "is_staff", "user_permissions")


def _refuse_unless_all_changeable(action):
    """Wrap a bulk action: refused whole if any selected user is out of the actor's reach."""

    @functools.wraps(action)
    def guarded(modeladmin, request, queryset):
        selected = list(queryset)
        if len(team_services.changeable_user_ids(actor=request.user, targets=selected)) != len(selected):
            raise PermissionDenied
        return action(modeladmin, request, queryset)

    return guarded


class OffersOnlyWhatTheActorMayGive(admin.ModelAdmin):
    """For a many-to-many an actor may only partly give (a user's groups, a group's permissions): the form
    offers what team/services.py says they may give, and saving keeps what it did not offer instead of dropping it."""

    offered_relation: str

    def offered(self, request):
        raise NotImplementedError

    def formfield_for_manytomany(self, db_field, request=None, **kwargs):
        if db_field.name == self.offered_relation:
            kwargs["queryset"] = self.offered(request)
        return super().formfield_for_manytomany(db_field, request=request, **kwargs)

    def save_related(self, request, form, formsets, change):
        relation = getattr(form.instance, self.offered_relation)
        kept = list(relation.exclude(pk__in=self.offered(request))) if change and not request.user.is_superuser else []
        super().save_related(request, form, formsets, change)
        relation.add(*kept)


class MonthlyLimitForm(MinutesLimitCheck, forms.ModelForm):
    class Meta:
        model = MonthlyLimit
        fields = ("jobs_per_month", "minutes_per_month")


class MonthlyLimitInline(admin.StackedInline):
    """A member's monthly limits on their user page: jobs, minutes of output, either or both (blank: none).
    Whoever may manage members (the Members page's permission) and may change this user may set them; nobody
    holds MonthlyLimit's own model permissions, so they are not what is asked."""

    model = MonthlyLimit
    form = MonthlyLimitForm
    fields = ("jobs_per_month", "minutes_per_month")
    extra = 1
    max_num = 1
    can_delete = False  # both blank is "no limit": the row is then removed (DubDashUserAdmin.save_related)
    verbose_name = verbose_name_plural = "Monthly limits"

    def _may_set(self, request, obj) -> bool:
        # obj is the user whose page it is; None when admin asks in general (its queryset of limits).
        return request.user.has_perm(roles.MANAGE_MEMBERS) and (
            obj is None or team_services.can_change_user(actor=request.user, target=obj)
        )

    def has_view_permission(self, request, obj=None):
        return self._may_set(request, obj)

    def has_add_permission(self, request, obj=None):
        return self._may_set(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._may_set(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False


class DubDashUserAdmin(OffersOnlyWhatTheActorMayGive, UserAdmin):
    offered_relation = "groups"
    inlines = (MonthlyLimitInline,)

    def offered(self, request):
        return team_services.assignable_groups(actor=request.user)

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields if request.user.is_superuser else fields + PRIVILEGE_FIELDS

    def has_change_permission(self, request, obj=None):
        # UserAdmin's password view asks this too, with the user whose password it would set.
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or team_services.can_change_user(actor=request.user, target=obj))

    def has_delete_permission(self, request, obj=None):
        # Asked for every selected user by the bulk delete as well, which then refuses the lot.
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or team_services.can_change_user(actor=request.user, target=obj))

    def get_actions(self, request):
        actions = super().get_actions(request)
        return {
            name: (_refuse_unless_all_changeable(action[0]), name, action[2])
            for name, action in actions.items()
            if action is not None
        }

    def save_model(self, request, obj, form, change):
        if not request.user.is_superuser:
            # Read-only fields already keep a crafted is_superuser/is_staff out of the form; this keeps them
            # out of the database whatever form is used.
            if change:
                stored = User._default_manager.only("is_superuser", "is_staff").get(pk=obj.pk)
                obj.is_superuser, obj.is_staff = stored.is_superuser, stored.is_staff
            else:
                obj.is_superuser = obj.is_staff = False
        super().save_model(request, obj, form, change)


    def get_inline_instances(self, request, obj=None):
        # Not on the add page: limits are set on the member's own page once they exist (as on the Members page).
        return super().get_inline_instances(request, obj) if obj is not None else []

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        team_services.forget_empty_limit(member=form.instance)


class DubDashGroupAdmin(OffersOnlyWhatTheActorMayGive, GroupAdmin):
    """Whoever may change groups without being a superuser puts in them only permissions they hold."""

    offered_relation = "permissions"

    def offered(self, request):
        return team_services.grantable_permissions(actor=request.user)


admin.site.unregister(User)
admin.site.register(User, DubDashUserAdmin)
admin.site.unregister(Group)
admin.site.register(Group, DubDashGroupAdmin)
