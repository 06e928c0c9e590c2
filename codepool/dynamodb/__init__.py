"""The DynamoDB adapter of the storage port.

`keys` (the item layout) is plain Python and cheap to import; `client` and `repository` import aioboto3, so
import them by name where they are needed: `from codepool.dynamodb.repository import DynamoDBRepository`.
"""
