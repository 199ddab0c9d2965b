"""Writes a RedshiftCopyActivity's merge statement from the key columns the table's catalog gives."""
