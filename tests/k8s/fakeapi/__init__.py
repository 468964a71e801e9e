"""A faithful-enough Kubernetes API server on 127.0.0.1 for the adapter's tests.

The official ``kubernetes`` client talks to it over real HTTP. It implements, for the resources
sloscale uses, the API semantics that Kubernetes documents (API concepts, API conventions,
the Eviction and Lease references), not the adapter's assumptions:

- real JSON objects with ``apiVersion``/``kind``, ``metadata.uid``, ``creationTimestamp``,
  ``generation`` (bumped when ``spec`` changes) and a cluster-wide ``resourceVersion``;
  list responses carry ``metadata.resourceVersion`` and items without ``kind``;
- optimistic concurrency: a write (PUT, or a PATCH whose body names a
  ``metadata.resourceVersion``) against a stale version is ``409 Conflict``; POST of an
  existing name is ``409 AlreadyExists``; missing objects ``404 NotFound``; errors are
  ``Status`` objects with ``reason``, ``message``, ``details`` and ``code``;
- ``application/merge-patch+json`` (RFC 7386) and ``application/strategic-merge-patch+json``
  (maps merge, ``null`` deletes, lists with a merge key such as ``containers``/``name``
  merge by key, ``$patch: delete|replace``); other patch types are ``415``;
- server-side apply (``application/apply-patch+yaml``, ``fieldManager``, ``force``) and
  ``metadata.managedFields``: who owns which field, conflicts, shared ownership, removal of
  what an applier leaves out (``fields``);
- the ``scale`` subresource of Deployments (``autoscaling/v1`` ``Scale``), and validation
  (``422 Invalid`` with field causes) of replicas, the selector/template labels and
  extended-resource quantities (integers; requests equal to limits), and of ConfigMaps
  (``binaryData`` base64, no key also in ``data``, at most 1 MiB in all);
- ``pods/eviction``: a matching PodDisruptionBudget with ``status.disruptionsAllowed == 0``
  answers ``429 TooManyRequests`` with a ``DisruptionBudget`` cause; more than one matching
  PDB is ``500``; otherwise the budget is decremented and the pod deleted (``201``);
  pending or finished pods ignore budgets;
- watch streams (chunked JSON lines): ``ADDED``/``MODIFIED``/``DELETED`` after the given
  resourceVersion, selector transitions as ``ADDED``/``DELETED``, ``BOOKMARK`` events when
  ``allowWatchBookmarks``, ``timeoutSeconds``, and an ``ERROR`` event with ``410 Expired``
  for a resourceVersion older than the last ``compact()``;
- RBAC: with ``rules`` (a ClusterRole's and Roles' rules) every request is authorised by
  verb, API group, resource/subresource and namespace, and refused with the API server's
  ``403 Forbidden`` message.

What it does not do is listed in ``docs/kubernetes.md`` (no controllers, no admission, no
JSON patch, no field selectors, no protobuf, no authentication).

Modules: ``kinds`` (resources, ``Status`` errors), ``patches`` (merge patches, selectors),
``fields`` (managedFields, server-side apply),
``validation``, ``storage`` (objects, resourceVersions, the event log), ``subresources``
(scale, eviction), ``watch``, ``rbac`` (requests, rules, injected faults), ``handler`` (HTTP)
and ``server`` (``FakeApiServer``).
"""

from tests.k8s.fakeapi.rbac import Request, Rule, rules_from_role
from tests.k8s.fakeapi.server import FakeApiServer

__all__ = ["FakeApiServer", "Request", "Rule", "rules_from_role"]
