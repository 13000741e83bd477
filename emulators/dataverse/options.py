"""Option-set (choice) values used by the business behaviour.

Transaction class, transaction type, billing type and billing status are the shared option sets
of ``docs/domain.md`` section 5. The others are emulator choices, marked [inf].
"""

from __future__ import annotations

# msdyn_transactionclassification
CLASS_TIME = 192350000
CLASS_EXPENSE = 192350001
CLASS_MATERIAL = 192350002
CLASS_MILESTONE = 192350003
CLASS_FEE = 192350004

# msdyn_transactiontypecode
TYPE_COST = 192350000
TYPE_PROJECT_CONTRACT = 192350004
TYPE_UNBILLED_SALES = 192350005
TYPE_BILLED_SALES = 192350006

# msdyn_billingtype
BILLING_NON_CHARGEABLE = 192350000
BILLING_CHARGEABLE = 192350001

# msdyn_billingstatus
STATUS_UNBILLED_SALES_CREATED = 192350000
STATUS_CUSTOMER_INVOICE_CREATED = 192350001

# msdyn_timeentry.msdyn_entrystatus
ENTRY_DRAFT = 192350000
ENTRY_RETURNED = 192350001
ENTRY_APPROVED = 192350002
ENTRY_SUBMITTED = 192354320

# msdyn_expense.msdyn_expensestatus and msdyn_projectvendorinvoice.msdyn_approvalstatus [inf]
APPROVAL_APPROVED = 192350002

# invoice.statuscode for proforma invoices [inf]
INVOICE_DRAFT = 1
INVOICE_CONFIRMED = 100001

# msdyn_transactionconnection roles and types [inf]
ROLE_ORIGINAL = 192350000
ROLE_REVERSAL = 192350001
ROLE_BILLED = 192350002
CONNECTION_ACTUAL = 192350000

STATE_ACTIVE = 0
STATE_INACTIVE = 1
