"""The Outlook knowledge base: providers, fix steps per finding per Outlook, reply codes,
Outlook error texts and dated provider policies, as YAML data validated by pydantic.

    >>> kb = load_knowledge()
    >>> kb.provider_by_host("smtp.office365.com").key
    'microsoft365'
    >>> kb.fix_for("tls.mode.ssl_on_starttls_port", OutlookClient.CLASSIC, FixContext(port=587))
"""

from diagnostics.knowledge._kb import Knowledge, ProviderMatch
from diagnostics.knowledge._loader import data_dir, load_knowledge, load_knowledge_from
from diagnostics.knowledge._models import (
    AuthSpec,
    ClientSpec,
    EndpointSpec,
    ErrorTextMatch,
    FindingSpec,
    FixContext,
    MxGateway,
    Policy,
    Provider,
    ReplyMeaning,
)
from diagnostics.knowledge._replies import enhanced_code

__all__ = [
    "AuthSpec",
    "ClientSpec",
    "EndpointSpec",
    "ErrorTextMatch",
    "FindingSpec",
    "FixContext",
    "Knowledge",
    "MxGateway",
    "Policy",
    "Provider",
    "ProviderMatch",
    "ReplyMeaning",
    "data_dir",
    "enhanced_code",
    "load_knowledge",
    "load_knowledge_from",
]
