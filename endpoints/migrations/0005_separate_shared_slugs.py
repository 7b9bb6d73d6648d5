"""Endpoints of several Roles that shared one slug get a slug per Role; the old address keeps working as an alias."""

from django.db import migrations
from django.utils.text import slugify


def separate(apps, schema_editor):
    Endpoint = apps.get_model("endpoints", "GeneratedEndpoint")
    Alias = apps.get_model("endpoints", "EndpointAlias")
    Role = apps.get_model("roles", "Role")
    groups = {}
    for organization_id, slug, role_id, version in Endpoint.objects.values_list(
        "organization_id", "slug", "role_id", "version"
    ).order_by("organization_id", "slug", "version"):
        groups.setdefault((organization_id, slug), []).append((version, role_id))
    for (organization_id, slug), versions in groups.items():
        owner = versions[0][1]
        others = sorted({role_id for _, role_id in versions if role_id != owner})
        taken = set(Endpoint.objects.filter(organization_id=organization_id).values_list("slug", flat=True))
        for role_id in others:
            role = Role.objects.get(pk=role_id)
            suffix = slugify(role.name) or f"role-{role_id}"
            n = 1
            while True:
                tail = suffix if n == 1 else f"{suffix}-{n}"
                target = f"{slug[: 63 - len(tail)].rstrip('-')}-{tail}"
                if target not in taken:
                    break
                n += 1
            taken.add(target)
            # Versions keep their numbers, so /v<N> of the old address still finds the same version.
            Endpoint.objects.filter(organization_id=organization_id, slug=slug, role_id=role_id).update(slug=target)
            Alias.objects.get_or_create(
                organization_id=organization_id, slug=slug, role_id=role_id, defaults={"target_slug": target}
            )


class Migration(migrations.Migration):
    dependencies = [("endpoints", "0004_endpoint_alias"), ("roles", "0001_initial")]

    operations = [migrations.RunPython(separate, migrations.RunPython.noop)]
