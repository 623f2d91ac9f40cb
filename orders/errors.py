from core.errors import ApplicationError


class OrderError(ApplicationError):
    code = "order_error"
    status = 400


class OrderNotFound(OrderError):
    code = "order_not_found"
    status = 404


class OrderInvalid(OrderError):
    """Bad input the instrument lookup or schema catches before the pre-trade rules."""

    code = "order_invalid"
    status = 422


class GttInvalid(OrderInvalid):
    """A GTT request that makes no sense against its instrument or last price; nothing was sent."""

    code = "gtt_invalid"


class GttInProgress(OrderError):
    """A GTT form sent again while its first request is still at the broker (or its answer was lost)."""

    code = "gtt_in_progress"
    status = 409


class OrderStateConflict(OrderError):
    """The act does not fit the order's current status (cancel a filled order, modify an unknown one)."""

    code = "order_state_conflict"
    status = 409


class PositionNotFound(OrderError):
    code = "position_not_found"
    status = 404
