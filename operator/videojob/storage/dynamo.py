"""Versions in DynamoDB (DESIGN.md "AWS"): one item per (video_key, version).

A version number is taken by writing its item with
`attribute_not_exists(video_key) AND attribute_not_exists(version)`: when two runs of the same
videoId race, DynamoDB lets exactly one of them have each number and the other tries the next.
The first write is a reservation (`status: uploading`); the finished record replaces it
(`completed`, or `local_only` when the upload failed and the files stayed on local disk) and is
never overwritten once completed. A restarted run finds its reservation or record by
(k8s_uid, k8s_generation) and reuses the number.

Blocking (boto3) code: call it from a worker thread.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Iterator

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from videojob.storage.records import VersionRecord, utc_now

RESERVED = "uploading"
COMPLETED = "completed"
LOCAL_ONLY = "local_only"
FINISHED = (COMPLETED, LOCAL_ONLY)

PROJECT_INDEX = "project-index"
_NEW_VERSION = "attribute_not_exists(video_key) AND attribute_not_exists(version)"
_MAX_ALLOCATION_TRIES = 1000

_ser = TypeSerializer()
_de = TypeDeserializer()


class VersionConflict(Exception):
    """The version's item is already a completed record of another run."""


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    item = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, float):
            value = Decimal(str(value))
        item[key] = _ser.serialize(value)
    return item


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, raw in item.items():
        value = _de.deserialize(raw)
        if isinstance(value, Decimal):
            value = int(value) if value == value.to_integral_value() and key != "duration_seconds" else float(value)
        out[key] = value
    return out


def to_record(item: dict[str, Any]) -> VersionRecord:
    return VersionRecord.model_validate(from_item(item))


class VersionTable:
    def __init__(self, client: Any, table_name: str):
        self.client = client
        self.name = table_name

    # ---------------------------------------------------------------------------- reading

    def _query(self, video_key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self.name,
            KeyConditionExpression="video_key = :k",
            ExpressionAttributeValues={":k": {"S": video_key}, **kwargs.pop("values", {})},
            ConsistentRead=True,
            **kwargs,
        ):
            yield from page.get("Items", [])

    def items(self, video_key: str) -> list[dict[str, Any]]:
        """Every item of the video, reservations included, oldest version first."""
        return [from_item(i) for i in self._query(video_key)]

    def list_versions(self, video_key: str) -> list[VersionRecord]:
        """Finished versions (completed or kept locally), oldest first."""
        return [VersionRecord.model_validate(i) for i in self.items(video_key) if i.get("status") in FINISHED]

    def latest_version(self, video_key: str, statuses: tuple[str, ...] = FINISHED) -> VersionRecord | None:
        for raw in self._query(video_key, ScanIndexForward=False):
            item = from_item(raw)
            if item.get("status") in statuses:
                return VersionRecord.model_validate(item)
        return None

    def get(self, video_key: str, version: int) -> dict[str, Any] | None:
        response = self.client.get_item(
            TableName=self.name, Key={"video_key": {"S": video_key}, "version": {"N": str(version)}}, ConsistentRead=True
        )
        return from_item(response["Item"]) if "Item" in response else None

    def highest_number(self, video_key: str) -> int:
        response = self.client.query(
            TableName=self.name,
            KeyConditionExpression="video_key = :k",
            ExpressionAttributeValues={":k": {"S": video_key}},
            ProjectionExpression="version",
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        items = response.get("Items", [])
        return int(items[0]["version"]["N"]) if items else 0

    def find_own(self, video_key: str, k8s_uid: str | None, k8s_generation: int | None) -> dict[str, Any] | None:
        """The reservation or record of this (k8s_uid, k8s_generation), if a previous try made one."""
        if not k8s_uid:
            return None
        values = {":u": {"S": k8s_uid}}
        condition = "k8s_uid = :u AND "
        if k8s_generation is None:
            condition += "attribute_not_exists(k8s_generation)"
        else:
            condition += "k8s_generation = :g"
            values[":g"] = {"N": str(k8s_generation)}
        for raw in self._query(video_key, FilterExpression=condition, values=values):
            return from_item(raw)
        return None

    def project_versions(self, project_id: str, limit: int = 100) -> list[VersionRecord]:
        """Newest versions of every video in a project (GSI `project-index`)."""
        response = self.client.query(
            TableName=self.name,
            IndexName=PROJECT_INDEX,
            KeyConditionExpression="project_id = :p",
            ExpressionAttributeValues={":p": {"S": project_id}},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [to_record(i) for i in response.get("Items", []) if i.get("status", {}).get("S") in FINISHED]

    # ---------------------------------------------------------------------------- writing

    def reserve(
        self,
        *,
        project_id: str,
        video_id: str,
        topic: str,
        k8s_uid: str | None = None,
        k8s_generation: int | None = None,
        parent_version: int | None = None,
        min_number: int = 1,
    ) -> tuple[int, dict[str, Any] | None]:
        """Take the next free version number. Returns (number, the existing item when a restarted
        run already had one — its `status` says whether the version is finished)."""
        key = f"{project_id}/{video_id}"
        own = self.find_own(key, k8s_uid, k8s_generation)
        if own is not None:
            return int(own["version"]), own
        number = max(min_number, self.highest_number(key) + 1)
        for _ in range(_MAX_ALLOCATION_TRIES):
            item = to_item(
                {
                    "video_key": key, "version": number, "project_id": project_id, "video_id": video_id,
                    "topic": topic, "status": RESERVED, "created_at": utc_now(), "k8s_uid": k8s_uid,
                    "k8s_generation": k8s_generation, "parent_version": parent_version,
                }
            )
            try:
                self.client.put_item(TableName=self.name, Item=item, ConditionExpression=_NEW_VERSION)
                return number, None
            except self.client.exceptions.ConditionalCheckFailedException:
                number = max(number + 1, self.highest_number(key) + 1)
        raise RuntimeError(f"could not allocate a version of {key} after {_MAX_ALLOCATION_TRIES} tries")

    def put_record(self, record: VersionRecord) -> None:
        """Write the finished record over its reservation. A completed record is never replaced."""
        try:
            self.client.put_item(
                TableName=self.name,
                Item=to_item(record.model_dump()),
                ConditionExpression="attribute_not_exists(version) OR #s <> :done",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":done": {"S": COMPLETED}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            raise VersionConflict(f"version {record.version} of {record.video_key} is already recorded") from None

    # ---------------------------------------------------------------------------- setup

    def describe(self) -> dict[str, Any]:
        table = self.client.describe_table(TableName=self.name)["Table"]
        indexes = [i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])]
        return {"table": self.name, "table_status": table["TableStatus"], "project_index": PROJECT_INDEX in indexes}

    def create(self) -> bool:
        """Create the table with its GSI (development); False when it already exists."""
        try:
            self.client.create_table(
                TableName=self.name,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[
                    {"AttributeName": "video_key", "AttributeType": "S"},
                    {"AttributeName": "version", "AttributeType": "N"},
                    {"AttributeName": "project_id", "AttributeType": "S"},
                    {"AttributeName": "created_at", "AttributeType": "S"},
                ],
                KeySchema=[
                    {"AttributeName": "video_key", "KeyType": "HASH"},
                    {"AttributeName": "version", "KeyType": "RANGE"},
                ],
                GlobalSecondaryIndexes=[
                    {
                        "IndexName": PROJECT_INDEX,
                        "KeySchema": [
                            {"AttributeName": "project_id", "KeyType": "HASH"},
                            {"AttributeName": "created_at", "KeyType": "RANGE"},
                        ],
                        "Projection": {"ProjectionType": "ALL"},
                    }
                ],
            )
        except self.client.exceptions.ResourceInUseException:
            return False
        self.client.get_waiter("table_exists").wait(TableName=self.name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        return True
