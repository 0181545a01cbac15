"""The customer's wishlist: ``GET /wishlist``, ``PUT /wishlist/{sku}``, ``DELETE /wishlist/{sku}``.

Every answer is the whole wishlist with current catalogue names and prices
(:func:`gateway.cart.contents.wishlist_document`). Customer tokens only: the admin token answers 403.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import delete

from gateway.cart.contents import catalogue_sku, customer_account_id, lock_account, wishlist_document
from gateway.catalogue.skus import path_sku
from gateway.http.responses import json_response
from gateway.keys import SESSIONMAKER
from models.clock import utcnow
from models.tables import WishlistItem

routes = web.RouteTableDef()


@routes.get("/wishlist")
async def get_wishlist(request: web.Request) -> web.Response:
    """The caller's wishlist, oldest entry first."""
    account_id = customer_account_id(request)
    async with request.app[SESSIONMAKER]() as session:
        return json_response(await wishlist_document(session, account_id))


@routes.put("/wishlist/{sku}")
async def put_wishlist_item(request: web.Request) -> web.Response:
    """Keep a catalogue item on the wishlist: 200 with the list; again changes nothing. 404 if unknown."""
    account_id = customer_account_id(request)
    wanted = path_sku(request)
    async with request.app[SESSIONMAKER]() as session, session.begin():
        sku = await catalogue_sku(session, wanted)
        # The account lock makes concurrent identical PUTs wait their turn instead of colliding.
        await lock_account(session, account_id)
        if await session.get(WishlistItem, (account_id, sku)) is None:
            session.add(WishlistItem(account_id=account_id, sku=sku, added_at=utcnow()))
            await session.flush()
        wishlist = await wishlist_document(session, account_id)
    return json_response(wishlist)


@routes.delete("/wishlist/{sku}")
async def delete_wishlist_item(request: web.Request) -> web.Response:
    """Take an item off the wishlist: 200 with the list, also when it was not on it."""
    account_id = customer_account_id(request)
    sku = path_sku(request)
    async with request.app[SESSIONMAKER]() as session, session.begin():
        if sku is not None:
            await session.execute(
                delete(WishlistItem).where(WishlistItem.account_id == account_id, WishlistItem.sku == sku)
            )
        wishlist = await wishlist_document(session, account_id)
    return json_response(wishlist)
