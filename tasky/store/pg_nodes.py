"""The nodes registry of the PostgreSQL store: every node sharing the database registers under
its name at start, heartbeats while it runs, and is marked stopped when it stops gracefully."""

from __future__ import annotations

from tasky.store.base import node_is_alive
from tasky.store.pg_database import Conn, PgDatabase
from tasky.store.records import NodeRecord
from tasky.store.sql_rows import NODE_COLUMNS, node_values, row_to_node

_COLUMNS = NODE_COLUMNS
_UPSERT = (
    f"INSERT INTO nodes ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (name) DO UPDATE SET labels = excluded.labels, owner = excluded.owner, "
    "workers = excluded.workers, started_at = excluded.started_at, "
    "heartbeat_at = excluded.heartbeat_at, stopped_at = excluded.stopped_at, "
    "host = excluded.host, pid = excluded.pid"
)


class NodesMixin:
    _db: PgDatabase

    async def register_node(self, node: NodeRecord, alive_after: float) -> NodeRecord | None:
        values = node_values(node)

        async def work(conn: Conn) -> NodeRecord | None:
            # Two nodes of one name starting together: the row lock (or the unique name, for a
            # new one) puts them one after the other, and the second sees the first alive.
            await conn.execute(
                f"INSERT INTO nodes ({_COLUMNS}) "
                "VALUES (%s, '[]', '', '[]', 0, 0, NULL, '', 0) ON CONFLICT (name) DO NOTHING",
                (node.name,),
            )
            cursor = await conn.execute(
                f"SELECT {_COLUMNS} FROM nodes WHERE name = %s FOR UPDATE", (node.name,)
            )
            row = await cursor.fetchone()
            if row is not None:
                known = row_to_node(row)
                if known.owner and node_is_alive(known, node.owner, alive_after):
                    return known
            await conn.execute(_UPSERT, values)
            return None

        return await self._db.write(work, transaction=True)

    async def node_heartbeat(self, name: str, owner: str, at: float) -> bool:
        changed = await self._db.execute(
            "UPDATE nodes SET heartbeat_at = %s "
            "WHERE name = %s AND owner = %s AND stopped_at IS NULL",
            (at, name, owner),
        )
        return changed == 1

    async def stop_node(self, name: str, owner: str, at: float) -> bool:
        changed = await self._db.execute(
            "UPDATE nodes SET stopped_at = %s WHERE name = %s AND owner = %s", (at, name, owner)
        )
        return changed == 1

    async def list_nodes(self) -> list[NodeRecord]:
        rows = await self._db.fetch_all(
            f"SELECT {_COLUMNS}, (SELECT count(*) FROM tasks t WHERE t.owner = nodes.owner "
            "AND t.status IN ('Running', 'Paused')) FROM nodes WHERE owner <> '' ORDER BY name"
        )
        return [row_to_node(row) for row in rows]
