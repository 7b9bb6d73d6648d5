import hashlib
import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def hash_existing_tokens(apps, schema_editor):
    """Every DRF token becomes a hashed personal token with the same secret (scripts keep working); the
    plain-text rows are deleted."""
    Token = apps.get_model("authtoken", "Token")
    PersonalToken = apps.get_model("api", "PersonalToken")
    for token in Token.objects.all():
        hashed = PersonalToken.objects.create(
            user_id=token.user_id,
            name="API token (issued before named tokens)",
            prefix=f"legacy-{uuid.uuid4().hex[:12]}",
            key_hash=hashlib.sha256(token.key.encode()).hexdigest(),
        )
        PersonalToken.objects.filter(pk=hashed.pk).update(created_at=token.created)
    Token.objects.all().delete()


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("authtoken", "0004_alter_tokenproxy_options"),
    ]

    operations = [
        migrations.CreateModel(
            name="PersonalToken",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("name", models.CharField(max_length=200)),
                ("prefix", models.CharField(editable=False, max_length=24, unique=True)),
                ("key_hash", models.CharField(db_index=True, editable=False, max_length=64)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("last_used_at", models.DateTimeField(blank=True, null=True)),
                ("expires_at", models.DateTimeField(blank=True, null=True)),
                ("revoked_at", models.DateTimeField(blank=True, null=True)),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="personal_tokens",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={"ordering": ["-created_at"]},
        ),
        migrations.RunPython(hash_existing_tokens, migrations.RunPython.noop),
    ]
