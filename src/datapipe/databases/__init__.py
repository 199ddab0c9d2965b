"""Data Pipeline's SQL objects: databases (RdsDatabase, JdbcDatabase, RedshiftDatabase), SqlActivity, CopyActivity
with SQL data nodes, and RedshiftCopyActivity's insert modes; drivers: psycopg 3 and PyMySQL (`datapipe[sql]`).
"""
