from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("account/otp/verify/", views.otp_verify, name="otp-verify"),
    path("account/otp/enrol/", views.otp_enrol, name="otp-enrol"),
    path("account/backup-codes/", views.backup_codes, name="backup-codes"),
    path("account/", views.profile, name="profile"),
    path("account/api-keys/", views.api_key_create, name="api-key-create"),
    path("account/api-keys/<int:key_id>/revoke/", views.api_key_revoke, name="api-key-revoke"),
    path("orgs/<slug:slug>/members/", views.members, name="members"),
    path("orgs/<slug:slug>/members/<int:user_id>/role/", views.member_role, name="member-role"),
    path("orgs/<slug:slug>/members/<int:user_id>/remove/", views.member_remove, name="member-remove"),
    path("broker-accounts/<int:account_id>/grant/", views.account_grant, name="account-grant"),
    path("broker-accounts/<int:account_id>/revoke/", views.account_revoke, name="account-revoke"),
]
