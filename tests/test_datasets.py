"""Specification of the dataset declarations (``ingestro.datasets``)."""

from __future__ import annotations

import pytest

from ingestro.datasets import SYSTEM_COLUMNS, Dataset, Field, FieldType, UnknownDataset, get_dataset


def test_contacts_declares_its_fields_in_order_with_types_and_required_flags() -> None:
    contacts = get_dataset("contacts")
    assert contacts.fields == (
        Field("email", FieldType.EMAIL, required=True),
        Field("first_name", FieldType.STRING, required=True),
        Field("last_name", FieldType.STRING, required=True),
        Field("age", FieldType.INTEGER, required=False, minimum=0),
        Field("signup_date", FieldType.DATE, required=True),
        Field("metadata", FieldType.JSON_OBJECT, required=False),
        Field("id", FieldType.STRING, required=False),
    )


def test_contacts_is_stored_in_the_contacts_table() -> None:
    contacts = get_dataset("contacts")
    assert isinstance(contacts, Dataset)
    assert contacts.name == "contacts"
    assert contacts.table == "contacts"


def test_contacts_field_names_are_in_declared_order() -> None:
    assert get_dataset("contacts").field_names == (
        "email",
        "first_name",
        "last_name",
        "age",
        "signup_date",
        "metadata",
        "id",
    )


def test_contacts_required_fields_are_email_names_and_signup_date() -> None:
    assert get_dataset("contacts").required_fields == ("email", "first_name", "last_name", "signup_date")


def test_field_types_are_enum_members_not_plain_strings() -> None:
    assert all(type(field.type) is FieldType for field in get_dataset("contacts").fields)


def test_no_field_takes_a_system_column_name() -> None:
    assert SYSTEM_COLUMNS.isdisjoint(get_dataset("contacts").field_names)


def test_get_dataset_returns_the_same_declaration_each_time() -> None:
    assert get_dataset("contacts") is get_dataset("contacts")


@pytest.mark.parametrize("name", ["orders", "", "Contacts", " contacts", "contacts.json"])
def test_unknown_dataset_raises_unknown_dataset(name: str) -> None:
    with pytest.raises(UnknownDataset) as caught:
        get_dataset(name)
    assert caught.value.args == (name,)


def test_unknown_dataset_is_a_lookup_error() -> None:
    assert issubclass(UnknownDataset, LookupError)
