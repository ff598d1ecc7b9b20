"""A small preset in two versions, and what a user changes in the app made from it."""

from __future__ import annotations

import copy
import json
from pathlib import Path

REF = "$ref"


def shop() -> dict:
    """Version 1.0.0: customers and their orders, with sample data."""
    return {
        "format": "crm-app/1",
        "name": "shop",
        "version": "1.0.0",
        "industry": "retail",
        "label": {"en": "Shop", "zh": "商店"},
        "description": {"en": "Customers and orders", "zh": "客户与订单"},
        "roles": [{"name": "sales", "label": "Sales"}],
        "entities": [
            {
                "name": "customer",
                "title_field": "name",
                "fields": [
                    {"name": "name", "type": "text", "label": "Name", "required": True},
                    {
                        "name": "tier",
                        "type": "select",
                        "label": "Tier",
                        "options": [{"value": "gold"}, {"value": "silver"}],
                    },
                    {"name": "city", "type": "text", "label": "City"},
                    {"name": "phone", "type": "phone"},
                ],
                "permissions": {"sales": ["read", "create", "update"]},
            },
            {
                "name": "purchase",
                "title_field": "title",
                "fields": [
                    {"name": "title", "type": "text", "required": True},
                    {"name": "customer", "type": "reference", "target": "customer"},
                    {"name": "amount", "type": "currency", "currency": "CNY"},
                ],
                "permissions": {"sales": ["read", "create"]},
            },
        ],
        "forms": [
            {
                "name": "customer_form",
                "entity": "customer",
                "default": True,
                "layout": [{"section": "Main", "fields": ["name", "tier", "city"]}],
            }
        ],
        "views": [
            {
                "name": "customers",
                "entity": "customer",
                "type": "list",
                "columns": ["name", "tier", "city"],
            }
        ],
        "sample_data": {
            "customer": [
                {"name": "Acme Ltd", "tier": "gold", "city": "Shanghai", "phone": "+8613800138000"},
                {"name": "王强贸易", "tier": "silver"},
            ],
            "purchase": [
                {
                    "title": "First order",
                    "customer": {REF: "customer", "name": "Acme Ltd"},
                    "amount": "1200.50",
                }
            ],
        },
    }


def shop_v11() -> dict:
    """Version 1.1.0: relabels, an e-mail field, a platinum tier; phone is gone."""
    doc = shop()
    doc["version"] = "1.1.0"
    customer = doc["entities"][0]
    fields = {f["name"]: f for f in customer["fields"]}
    fields["name"]["label"] = {"en": "Customer name", "zh": "客户名称"}
    fields["city"]["label"] = "City of business"
    fields["tier"]["options"].append({"value": "platinum"})
    customer["fields"] = [f for f in customer["fields"] if f["name"] != "phone"]
    customer["fields"].append({"name": "email", "type": "email"})
    doc["forms"][0]["layout"][0]["fields"].append("email")
    doc["sample_data"]["customer"][0].pop("phone")
    doc["sample_data"]["customer"].append({"name": "New Co", "tier": "platinum"})
    return doc


def customised(document: dict) -> dict:
    """What the shop's users changed in their app: version 1.0.1."""
    doc = copy.deepcopy(document)
    doc.pop("sample_data", None)
    doc["version"] = "1.0.1"
    customer = doc["entities"][0]
    fields = {f["name"]: f for f in customer["fields"]}
    fields["tier"]["label"] = "Level"
    fields["tier"]["options"].append({"value": "bronze"})
    fields["city"]["label"] = "Town"
    customer["fields"].append({"name": "wechat", "type": "text"})
    doc["forms"][0]["layout"][0]["fields"].append("wechat")
    return doc


def write(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")
    return path
