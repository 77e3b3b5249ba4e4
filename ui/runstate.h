// The comparison's state, apart from any widget: per method the latest selection (a preview's or
// a run's), the latest answer and the configuration it was made with; which answers the controls
// no longer match (stale); how long the last run took, and from that whether a change may
// regenerate the answers by itself.
//
// The window pushes what the controls say (setControls, one key per method: run_key) and what
// the engine answers (beginPreview / previewArrived, beginRun / methodArrived / runArrived, each
// checked against the generation it was issued with); the widgets update from the signals. The
// auto-run rule: after a change, answers regenerate by themselves (autoRunDue, once the controls
// rest for autoRunDelayMs) only while the last non-cold run took less than autoRunThresholdMs
// (0 = never; no run timed yet = never, since a first run of a 7B model may take minutes), and
// never while a slider is held down. Otherwise the answers stay, marked stale, until Run.
#pragma once

#include <QElapsedTimer>
#include <QMap>
#include <QObject>
#include <QString>
#include <QStringList>
#include <QVector>

#include "core/api.h"

class QTimer;

namespace dlui {

// The key of one method's configuration under the given inputs (model, image, question,
// template, max new tokens): an answer made under one key is stale under any other.
QString run_key(const QString& inputsKey, const dl::PruneConfig& config);

class RunState : public QObject {
    Q_OBJECT
public:
    explicit RunState(QObject* parent = nullptr);

    // --- the controls ------------------------------------------------------------------------
    // The visible methods in column order, and each method's current key (run_key). Emits
    // answersChanged when a method becomes stale or current.
    void setControls(const QStringList& methods, const QMap<QString, QString>& keys);
    QStringList methods() const { return m_methods; }
    // A control changed (after setControls). interacting: a slider is still held down, so no
    // automatic run yet. Schedules one when allowed, else emits staleAnswersKept when answers
    // are stale.
    void controlsChanged(bool interacting);
    // The slider was released: regenerate now when allowed.
    void interactionFinished();
    // Regenerate (after the delay) when allowed and something needs it; e.g. a column shown.
    void scheduleAutoRun(int delayMs = -1);
    void cancelAutoRun();
    bool autoRunPending() const;

    // --- auto-run rule -------------------------------------------------------------------------
    int autoRunThresholdMs() const { return m_thresholdMs; }
    void setAutoRunThresholdMs(int ms);
    int autoRunDelayMs() const { return m_delayMs; }
    void setAutoRunDelayMs(int ms) { m_delayMs = ms; }
    qint64 lastRunMs() const { return m_lastRunMs; }  // wall time of the last finished run, -1 = none
    bool autoRunAllowed() const;                       // the last run took less than the threshold

    // --- results -------------------------------------------------------------------------------
    // New image or model: every selection and answer is forgotten, results still on their way
    // are dropped. The last run time is kept (it says what a run costs on this machine).
    void reset();
    // A preview of `methods` was issued as `generation`; its results (same order) are stored
    // only if it is still the latest preview. Returns whether they were.
    void beginPreview(quint64 generation, const QStringList& methods);
    bool previewArrived(quint64 generation, const QVector<dl::PruningResult>& results);
    // A run of `methods` (slot i = methods[i]) was issued as `generation` with the current keys.
    // cold: a "Measure cold" run, whose time is not what an automatic run would cost.
    void beginRun(quint64 generation, const QStringList& methods, bool cold);
    // One method's answer; a cancelled one (the answer so far) is kept but never current.
    bool methodArrived(quint64 generation, int slot, const dl::MethodRun& run);
    // The whole run finished: records its time (unless cold); emits runFinished.
    bool runArrived(quint64 generation);
    // The visible methods a run must regenerate: those without a current answer (all when cold).
    QStringList methodsToRun(bool cold) const;

    const dl::PruningResult* selection(const QString& method) const;  // nullptr: none yet
    const dl::MethodRun* run(const QString& method) const;            // nullptr: none yet
    bool isCurrent(const QString& method) const;  // has an answer made with the current controls
    bool isStale(const QString& method) const;    // has a finished answer the controls no longer match
    bool hasResults() const;                      // every visible method has a current answer
    bool hasRuns() const { return !m_runs.isEmpty(); }
    bool countsInFigures(const QString& method) const;  // has a run that was not cancelled

signals:
    void selectionsChanged();  // kept counts and overlays must follow
    void runsChanged();        // figures must follow
    void answersChanged();     // an answer arrived, or became stale or current
    void runFinished();        // a whole run landed (chart, status)
    void staleAnswersKept();   // a change left stale answers and will not regenerate them
    void autoRunDue();         // regenerate the stale answers now

private:
    QString staleSignature() const;
    bool needsRun() const { return !hasResults(); }

    QStringList m_methods;
    QMap<QString, QString> m_keys;          // current key per method
    QMap<QString, dl::PruningResult> m_selections;
    QMap<QString, dl::MethodRun> m_runs;
    QMap<QString, QString> m_runKeys;       // key each stored answer was made with ("" = cancelled)
    quint64 m_previewGen = 0, m_runGen = 0;
    QStringList m_previewMethods, m_runMethods, m_runMethodKeys;
    bool m_runIsCold = false;
    QElapsedTimer m_runClock;
    qint64 m_lastRunMs = -1;
    int m_thresholdMs = 2000;
    int m_delayMs = 600;
    bool m_interacting = false;
    QTimer* m_timer = nullptr;
};

}  // namespace dlui
