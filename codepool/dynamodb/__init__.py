"""The DynamoDB adapter of the storage port."""

from codepool.dynamodb.client import open_client
from codepool.dynamodb.repository import DynamoDBRepository
from codepool.dynamodb.schema import create_table, table_definition

__all__ = ["DynamoDBRepository", "create_table", "open_client", "table_definition"]
